"""The LLM price table (cost/llm-prices.yaml) and tokens priced with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.cost.tokens import (
    LLM_PRICES_PATH,
    LLMPriceError,
    LLMPrices,
    ModelPrice,
    llm_prices_from_text,
    price_tokens,
    read_llm_prices,
)
from portal.integrations.cost_metrics import TokenCount, Workload

TABLE = """\
# prices per million tokens
currency: USD
models:
  gpt-4o-mini:
    input_per_million: "0.15"
    output_per_million: "0.60"
  llama-3-8b:
    input_per_million: 0.05
    output_per_million: 0.1
    currency: EUR
"""
PROD = Workload("prod", "rag", "rag")


def count(model: str, kind: str, tokens: int, workload: Workload = PROD) -> TokenCount:
    return TokenCount(workload, model, kind, Decimal(tokens))


def test_the_table_reads_prices_exactly_and_currencies_per_model() -> None:
    table = llm_prices_from_text(TABLE)
    assert table.models["gpt-4o-mini"] == ModelPrice(Decimal("0.15"), Decimal("0.60"), "USD")
    assert table.models["llama-3-8b"] == ModelPrice(Decimal("0.05"), Decimal("0.1"), "EUR")


def test_an_empty_table_prices_nothing() -> None:
    assert llm_prices_from_text("") == LLMPrices()
    assert llm_prices_from_text("currency: EUR\n") == LLMPrices(currency="EUR")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  m:\n    input_per_million: cheap\n    output_per_million: 1\n",
            "cost/llm-prices.yaml:3: models.m.input_per_million: must be a number",
        ),
        (
            "models:\n  m:\n    input_per_million: -1\n    output_per_million: 1\n",
            "cost/llm-prices.yaml:3: models.m.input_per_million: must be a finite number >= 0",
        ),
        (
            "models:\n  m:\n    input_per_million: 1\n",
            "cost/llm-prices.yaml:2: models.m.output_per_million: missing",
        ),
        (
            "models:\n  m:\n    input_per_million: 1\n    output_per_million: 1\n    per: 2\n",
            "cost/llm-prices.yaml:5: models.m.per: unknown field",
        ),
        ("models:\n  m: 3\n", "cost/llm-prices.yaml:2: models.m: must map"),
        ("models: [a]\n", "cost/llm-prices.yaml:1: models: must map model names"),
        ("currency: 3\n", "cost/llm-prices.yaml:1: currency: must be a currency code"),
        ("prices: {}\n", "cost/llm-prices.yaml:1: prices: unknown field"),
        ("currency: USD\ncurrency: EUR\n", "cost/llm-prices.yaml:2: currency: given twice"),
        ("models: [\n", "cost/llm-prices.yaml:2: not valid YAML"),
        ("a: 1\n---\nb: 2\n", "cost/llm-prices.yaml:3: one document only"),
        ("- 1\n", "cost/llm-prices.yaml:1: the table maps currency and models"),
    ],
)
def test_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(LLMPriceError) as caught:
        llm_prices_from_text(text, LLM_PRICES_PATH)
    assert str(caught.value).startswith(message), str(caught.value)


def test_token_cost_is_tokens_over_a_million_times_the_price() -> None:
    table = llm_prices_from_text(TABLE)
    cost = price_tokens(
        [
            count("gpt-4o-mini", "input", 2_000_000),
            count("gpt-4o-mini", "input", 500_000),  # summed with the line above
            count("gpt-4o-mini", "completion", 300_000),  # OpenAI's name for output
            count("llama-3-8b", "prompt", 10_000_000),
        ],
        table,
    )
    by_key = {(line.model, line.kind): line for line in cost.lines}
    # 2.5M x 0.15 = 0.375; 0.3M x 0.60 = 0.18; 10M x 0.05 EUR = 0.5 EUR
    assert by_key[("gpt-4o-mini", "input")].cost == Decimal("0.375")
    assert by_key[("gpt-4o-mini", "input")].tokens == Decimal(2_500_000)
    assert by_key[("gpt-4o-mini", "completion")].cost == Decimal("0.18")
    assert by_key[("llama-3-8b", "prompt")].cost == Decimal("0.5")
    assert cost.totals == {"USD": Decimal("0.555"), "EUR": Decimal("0.5")}
    assert cost.unpriced == []


def test_a_model_missing_from_the_table_is_never_priced_at_zero() -> None:
    table = llm_prices_from_text(TABLE)
    cost = price_tokens(
        [count("gpt-4o-mini", "output", 1_000_000), count("mystery-7b", "input", 9_000_000)],
        table,
    )
    (missing,) = cost.unpriced
    assert missing.model == "mystery-7b"
    assert missing.cost is None
    assert missing.problem == "no price for model mystery-7b"
    assert cost.totals == {"USD": Decimal("0.60")}


def test_an_unknown_kind_and_a_missing_table_are_said() -> None:
    table = llm_prices_from_text(TABLE)
    (odd,) = price_tokens([count("gpt-4o-mini", "cached", 5)], table).lines
    assert odd.cost is None
    assert odd.problem is not None and "'cached' tokens of model gpt-4o-mini" in odd.problem
    (none,) = price_tokens([count("gpt-4o-mini", "input", 5)], None).lines
    assert none.problem is not None and LLM_PRICES_PATH in none.problem


class FakeRepo:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        return sorted(path for path in self.files if path.startswith(prefix))

    def read_file(self, ref: str, path: str) -> bytes:
        return self.files[path]


def test_the_table_is_read_from_the_gitops_repository_when_present() -> None:
    assert read_llm_prices(FakeRepo({"cost/prices/dev.yaml": b""}), "main") is None
    table = read_llm_prices(FakeRepo({LLM_PRICES_PATH: TABLE.encode()}), "main")
    assert table is not None and set(table.models) == {"gpt-4o-mini", "llama-3-8b"}
