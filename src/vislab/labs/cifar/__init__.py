"""CIFAR-10 lab: MLP, CNNs, block CNNs, transfer learning and a fast recipe on the shared engine."""
