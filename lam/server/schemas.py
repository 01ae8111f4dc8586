"""Request bodies of the HTTP API (pydantic, strict: a number is never taken for a string).

``/v1/embeddings`` follows OpenAI's embeddings API: ``input`` is one string or a list of
strings (token-id arrays are not accepted), ``dimensions`` keeps the first dimensions
(Matryoshka) and re-normalises, ``encoding_format`` is "float" or "base64" (little-endian
float32, as OpenAI sends it). ``model`` is accepted and ignored: the server serves one model
and names it in every answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class EmbeddingsRequest(_Body):
    model_config = ConfigDict(extra="ignore", strict=True)  # OpenAI clients send "user" and more

    input: StrictStr | Annotated[list[StrictStr], Field(min_length=1)]
    model: StrictStr | None = None
    dimensions: StrictInt | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"


class DocumentIn(_Body):
    id: Annotated[StrictStr, Field(min_length=1, max_length=1024)]
    text: StrictStr
    metadata: dict[str, Any] | None = None


class IndexRequest(_Body):
    documents: Annotated[list[DocumentIn], Field(min_length=1)]


class SearchRequest(_Body):
    query: StrictStr | Annotated[list[StrictStr], Field(min_length=1)]
    top_k: StrictInt = Field(default=10, ge=1, le=1000)
