"""What LLM tokens cost: the price table in the GitOps repository, and tokens priced with it.

The table lives at ``cost/llm-prices.yaml`` on the GitOps ``main`` (outside ``clusters/``, so
Flux never applies it), one entry per model, prices per million tokens::

    currency: USD                 # optional, the default of every model (USD)
    models:
      gpt-4o-mini:
        input_per_million: "0.15"
        output_per_million: "0.60"
      llama-3-8b-instruct:
        input_per_million: 0.05
        output_per_million: 0.10
        currency: EUR             # optional, per model

Errors name the file, the line and the field (``cost/llm-prices.yaml:4:
models.gpt-4o-mini.input_per_million: must be a number``). A model the table does not name
is never priced at 0: its tokens are listed with "no price for model X" and left out of
the total, so a missing entry can be seen instead of hiding as a cheap service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from portal.cost.model import read_price
from portal.integrations.cost_metrics import TokenCount
from portal.yaml_source import YamlDocument, YamlStream

LLM_PRICES_PATH = "cost/llm-prices.yaml"
MAX_LLM_PRICE_FILE_BYTES = 256 * 1024  # a few hundred models at most
MILLION = Decimal(1_000_000)
# Token kinds as services label them: OpenAI's names map to the table's two prices.
KINDS = {"input": "input", "prompt": "input", "output": "output", "completion": "output"}
_MODEL_KEYS = ("input_per_million", "output_per_million", "currency")


class LLMPriceError(ValueError):
    """A price table that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices per million input and output tokens, in ``currency``."""

    input_per_million: Decimal
    output_per_million: Decimal
    currency: str = "USD"

    def per_million(self, kind: str) -> Decimal | None:
        """Return the price per million tokens of ``kind`` (input/prompt or output/completion)."""
        side = KINDS.get(kind)
        if side is None:
            return None
        return self.input_per_million if side == "input" else self.output_per_million


@dataclass(frozen=True)
class LLMPrices:
    """The price table: models by name, and the currency of models that name none."""

    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    currency: str = "USD"


def _currency(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LLMPriceError(f"{where}: must be a currency code")
    return value.strip()


def _model(
    document: YamlDocument, name: str, value: object, source: str, currency: str
) -> ModelPrice:
    line = document.line_of(["models", name])
    if not isinstance(value, dict):
        raise LLMPriceError(
            f"{source}:{line}: models.{name}: must map input_per_million and output_per_million"
        )
    prices: dict[str, Decimal] = {}
    for key, item in value.items():
        here = f"{source}:{document.line_of(['models', name, str(key)])}: models.{name}.{key}"
        if key == "currency":
            currency = _currency(item, here)
        elif key in _MODEL_KEYS:
            try:
                prices[key] = read_price(item)
            except ValueError as error:
                raise LLMPriceError(f"{here}: {error}") from error
        else:
            raise LLMPriceError(f"{here}: unknown field (known: {', '.join(_MODEL_KEYS)})")
    for key in _MODEL_KEYS[:2]:
        if key not in prices:
            raise LLMPriceError(f"{source}:{line}: models.{name}.{key}: missing")
    return ModelPrice(prices["input_per_million"], prices["output_per_million"], currency)


def llm_prices_from_text(text: str, source: str = LLM_PRICES_PATH) -> LLMPrices:
    """Read the price table's YAML ``text``; ``source`` (its path) starts every error."""
    if len(text.encode()) > MAX_LLM_PRICE_FILE_BYTES:
        raise LLMPriceError(f"{source}: larger than {MAX_LLM_PRICE_FILE_BYTES} bytes")
    stream = YamlStream(text, max_aliases=0, max_nodes=10_000)
    documents = list(stream)
    if stream.problem is not None:
        where = f":{stream.problem.line}" if stream.problem.line else ""
        raise LLMPriceError(f"{source}{where}: not valid YAML: {stream.problem.reason}")
    if len(documents) > 1:
        raise LLMPriceError(f"{source}:{documents[1].line}: one document only")
    if not documents or documents[0].data is None:
        return LLMPrices()
    document = documents[0]
    data = document.data
    if not isinstance(data, dict):
        raise LLMPriceError(f"{source}:{document.line}: the table maps currency and models")
    for key, line in stream.duplicates:
        raise LLMPriceError(f"{source}:{line}: {key}: given twice")
    unknown = [key for key in data if key not in ("currency", "models")]
    if unknown:
        line = document.line_of([str(unknown[0])])
        raise LLMPriceError(
            f"{source}:{line}: {unknown[0]}: unknown field (known: currency, models)"
        )
    currency = "USD"
    if "currency" in data:
        currency = _currency(
            data["currency"], f"{source}:{document.line_of(['currency'])}: currency"
        )
    models = data.get("models")
    if models is None:
        return LLMPrices(currency=currency)
    if not isinstance(models, dict):
        line = document.line_of(["models"])
        raise LLMPriceError(f"{source}:{line}: models: must map model names to their prices")
    return LLMPrices(
        {
            str(name): _model(document, str(name), value, source, currency)
            for name, value in models.items()
        },
        currency,
    )


class FileReader(Protocol):
    """What reading the table needs of the GitOps repository (``GitOpsClone`` has it)."""

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        """Return the file paths at ``ref`` under ``prefix``."""
        ...

    def read_file(self, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref``."""
        ...


def read_llm_prices(repo: FileReader, commit: str) -> LLMPrices | None:
    """Return the table at ``commit``, None when the repository has none.

    Raises :class:`LLMPriceError` for a table that cannot be used.
    """
    if LLM_PRICES_PATH not in repo.list_files(commit, "cost"):
        return None
    text = repo.read_file(commit, LLM_PRICES_PATH).decode("utf-8", "replace")
    return llm_prices_from_text(text, LLM_PRICES_PATH)


@dataclass(frozen=True, slots=True)
class TokenLine:
    """Tokens of one model and kind: their cost, or why they have none (``problem``)."""

    environment: str
    model: str
    kind: str
    tokens: Decimal
    price_per_million: Decimal | None
    cost: Decimal | None
    currency: str | None
    problem: str | None = None


@dataclass(frozen=True)
class TokenCost:
    """A service's tokens over a window, priced; totals per currency of the priced lines."""

    lines: tuple[TokenLine, ...]
    totals: Mapping[str, Decimal]

    @property
    def unpriced(self) -> list[TokenLine]:
        """The lines left out of the totals, each with its ``problem``."""
        return [line for line in self.lines if line.cost is None]


def price_tokens(counts: Iterable[TokenCount], table: LLMPrices | None) -> TokenCost:
    """Price token counts: tokens / 1e6 x the model's price of their kind.

    Counts of one environment, model and kind are summed first. A model or kind the table
    does not price (or no table at all) gets a ``problem`` and no cost, never a cost of 0.
    """
    summed: dict[tuple[str, str, str], Decimal] = {}
    for count in counts:
        key = (count.workload.environment, count.model, count.kind)
        summed[key] = summed.get(key, Decimal(0)) + count.tokens
    lines: list[TokenLine] = []
    totals: dict[str, Decimal] = {}
    for (environment, model, kind), tokens in sorted(summed.items()):
        price = table.models.get(model) if table is not None else None
        per_million = price.per_million(kind) if price is not None else None
        if table is None:
            problem: str | None = f"no price table at {LLM_PRICES_PATH} in the GitOps repository"
        elif price is None:
            problem = f"no price for model {model}"
        elif per_million is None:
            problem = f"no price for {kind!r} tokens of model {model} (input or output)"
        else:
            problem = None
        if price is None or per_million is None:
            lines.append(TokenLine(environment, model, kind, tokens, None, None, None, problem))
            continue
        cost = tokens / MILLION * per_million
        totals[price.currency] = totals.get(price.currency, Decimal(0)) + cost
        lines.append(TokenLine(environment, model, kind, tokens, per_million, cost, price.currency))
    return TokenCost(tuple(lines), totals)
