"""The labs: each one owns its config and recipes, data, models, plots, lab functions and CLI sub-app,
and builds on `vislab.core`. Importing this package registers every lab's recipes, packaged configs
and checkpoint loader (light imports: pydantic configs and small loader stubs)."""
from vislab.labs.cifar import config as _cifar_config  # noqa: F401
from vislab.labs.fashion import config as _fashion_config  # noqa: F401
from vislab.labs.siamese import config as _siamese_config  # noqa: F401
from vislab.labs.vae import config as _vae_config  # noqa: F401

LABS = ["fashion", "cifar", "siamese", "vae"]
