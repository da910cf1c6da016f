"""Validate an order with pydantic (a compiled core, built for the function's architecture)."""

import importlib.metadata
import platform

from pydantic import BaseModel, PositiveInt


class Order(BaseModel):
    item: str
    quantity: PositiveInt


def handler(event, context):
    order = Order.model_validate(event)
    return {
        "order": order.model_dump(),
        "machine": platform.machine(),
        "pydantic_core": importlib.metadata.version("pydantic-core"),
    }
