"""The executor, able to embed JSON that PostgreSQL wrote.

A root field compiled by schema/compiled.py resolves to an `orjson.Fragment`: the JSON text of
its whole value. The executor takes it as the completed value, without walking the selection
below it, and orjson writes it into the response as it is.
"""

from __future__ import annotations

from typing import Any

import orjson
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class EmbeddingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, orjson.Fragment):
            return result
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )
