"""What the SDK-backed chat clients share: options merging and the SDK client's lifetime.

`OpenAIChatClient` and `AnthropicChatClient` each wrap a provider SDK's async
client. `SDKClient` checks the SDK is installed, creates that client on first
use (nothing binds to an event loop at construction), reads the key and base
URL from the arguments or the environment (`credentials`), refuses calls once
closed, and closes only a client it created (an injected one stays the
caller's to close).
"""

from __future__ import annotations

import importlib
from dataclasses import fields, replace
from typing import Generic, Protocol, Self, TypeVar

from ._client import ChatClientError, ChatOptions, credentials

__all__ = ["SDKClient", "merge_options"]


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


def merge_options(defaults: ChatOptions, options: ChatOptions | None) -> ChatOptions:
    """`defaults` with every field `options` sets (not None) taking its place."""
    if options is None:
        return defaults
    given = {f.name: getattr(options, f.name) for f in fields(options)}
    return replace(defaults, **{k: v for k, v in given.items() if v is not None})


class SDKClient(Generic[C]):
    """The SDK client's lifetime for a chat client (see the module docstring).

    Args:
        package: the SDK's import name, e.g. "openai" (its extra has the same name).
        env: the environment prefix of the key and base URL, e.g. "OPENAI".
        client: a ready SDK client to use instead of creating one.
        config: the key, base URL, retries and timeout to create one with.
    """

    def __init__(
        self,
        package: str,
        env: str,
        client: C | None,
        config: tuple[str | None, str | None, int, float | None],
    ) -> None:
        try:
            importlib.import_module(package)
        except ImportError as exc:
            msg = f"{type(self).__name__} needs the {package} package: "
            msg += f"pip install 'stepgraph[{package}]'"
            raise ImportError(msg) from exc
        self._env = env
        self._config = config
        self._client = client
        self._owns_client = False
        self._closed = False

    def _connect(
        self, api_key: str, base_url: str | None, max_retries: int, timeout: float | None
    ) -> C:
        """A new SDK client (the subclass knows the SDK)."""
        raise NotImplementedError

    def _connection(self) -> C:
        if self._closed:
            raise ChatClientError(f"this {type(self).__name__} is closed")
        if self._client is None:
            api_key, base_url, max_retries, timeout = self._config
            api_key, base_url = credentials(api_key, base_url, self._env)
            self._client = self._connect(api_key, base_url, max_retries, timeout)
            self._owns_client = True
        return self._client

    async def aclose(self) -> None:
        """Close the connection this client created; the client cannot be used afterwards."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
