"""What model tokens cost, in USD per million tokens, for `cost_usd` and `budget.max_cost_usd`.

Built-in list prices (on-demand, us-east-1) can be overridden or extended with the `MODEL_PRICES`
setting: `{"<model id>": [input, output], ...}`. Cross-region inference profile ids (`us.…`, `eu.…`)
are priced as their model. An unknown model is priced like a large one, so a cost budget errs on the
side of refusing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

from sessions_api.settings import Settings


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return round(total / 1_000_000, 8)


BUILT_IN: dict[str, Price] = {
    "local-echo": Price(0.0, 0.0),
    "amazon.nova-micro-v1:0": Price(0.035, 0.14),
    "amazon.nova-lite-v1:0": Price(0.06, 0.24),
    "amazon.nova-pro-v1:0": Price(0.8, 3.2),
    "anthropic.claude-3-haiku-20240307-v1:0": Price(0.25, 1.25),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Price(0.8, 4.0),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": Price(3.0, 15.0),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": Price(3.0, 15.0),
    "anthropic.claude-sonnet-4-20250514-v1:0": Price(3.0, 15.0),
}
UNKNOWN = Price(3.0, 15.0)
_PROFILE_PREFIX = re.compile(r"^(us|us-gov|eu|apac|jp|au|ca|global)\.")


@cache
def _table(overrides: str | None) -> dict[str, Price]:
    table = dict(BUILT_IN)
    if overrides:
        for model_id, (input_price, output_price) in json.loads(overrides).items():
            table[model_id] = Price(float(input_price), float(output_price))
    return table


def price_for(model_id: str, settings: Settings) -> Price:
    table = _table(settings.model_prices)
    return table.get(model_id) or table.get(_PROFILE_PREFIX.sub("", model_id)) or table.get("*") or UNKNOWN
