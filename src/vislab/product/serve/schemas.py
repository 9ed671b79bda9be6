"""The service's JSON answers; FastAPI turns them into the OpenAPI schema at /docs."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Label(BaseModel):
    label: str
    confidence: float = Field(description="Softmax probability, 0..1")


class Attribute(Label):
    threshold: float | None = Field(description="Confidence under which this attribute needs review "
                                                "(null: it always does)")
    needs_review: bool
    top_k: list[Label]


class Tags(BaseModel):
    filename: str
    caption: str
    needs_review: bool = Field(description="Whether any attribute needs a person's review")
    review: list[str] = Field(description="The attributes that need review")
    attributes: dict[str, Attribute] = Field(description="Per attribute, in the model's task order")


class ItemError(BaseModel):
    filename: str
    status: int
    error: str


class BatchTags(BaseModel):
    results: list[Tags | ItemError] = Field(description="One per uploaded file, in order; a file that cannot "
                                                        "be tagged gets its error")


class ModelInfo(BaseModel):
    lab: str
    backbone: str
    checkpoint: str
    image_size: list[int]
    tasks: dict[str, list[str]] = Field(description="Classes per attribute")
    thresholds: dict[str, float | None]
    review_precision: float | None = Field(description="Precision the thresholds were chosen for, on validation")
    metrics: dict[str, Any] = Field(description="The training run's test metrics per attribute, when known")
    version: dict[str, str]
    limits: dict[str, Any]
    precision: str = Field(description="Inference precision: 32 or bf16")
    backend: str = Field(description="Inference backend: torch or onnx")
    tta: bool = Field(False, description="Flip test-time augmentation: the photo and its mirror averaged")
    similar: dict[str, Any] | None = Field(description="The catalog index behind /v1/similar (items, dim), or "
                                                       "null when the service runs without one")


class Match(BaseModel):
    rank: int
    id: str = Field(description="The product id (CSV id column, or the file name without extension)")
    score: float = Field(description="Cosine similarity of the embeddings, -1..1")
    labels: dict[str, str] = Field(description="The model's labels of the catalog item")
    image: str = Field(description="URL of the catalog image on this service")


class Similar(BaseModel):
    filename: str
    matches: list[Match]
    tags: Tags


class Problem(BaseModel):
    detail: str
