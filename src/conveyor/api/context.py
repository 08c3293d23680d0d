"""The application context, as the API's modules have imported it: it lives in
`conveyor.context`, below both the API and the engine."""

from conveyor.context import AppContext, ctx

__all__ = ["AppContext", "ctx"]
