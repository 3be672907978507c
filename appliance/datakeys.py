"""Typed keys for what addons share through `app.data` (like Home Assistant's `HassKey`, aiohttp's `AppKey`)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class DataKey(Generic[T]):
    """The key of one value in `app.data`; its type parameter is the value's type."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        """Name the key (the owning addon's domain, or `domain.part`)."""
        self.name = name

    def __repr__(self) -> str:
        """Show the key's name."""
        return f"DataKey({self.name!r})"


class AddonData(dict[DataKey[Any], Any]):
    """`app.data`: values keyed by `DataKey` only, typed by their key."""

    @overload
    def get(self, key: DataKey[T], default: None = None) -> T | None: ...

    @overload
    def get(self, key: DataKey[T], default: T) -> T: ...

    def get(self, key: DataKey[Any], default: Any = None) -> Any:
        """The value under `key`, or `default` when the addon holding it is not set up."""
        return super().get(key, default)

    def __getitem__(self, key: DataKey[T]) -> T:
        """The value under `key` (KeyError when its addon is not set up)."""
        value: T = super().__getitem__(key)
        return value

    def __setitem__(self, key: DataKey[T], value: T) -> None:
        """Store a value; only a `DataKey` may be used."""
        if not isinstance(key, DataKey):
            raise TypeError(f"app.data takes a DataKey, not {type(key).__name__}")
        super().__setitem__(key, value)
