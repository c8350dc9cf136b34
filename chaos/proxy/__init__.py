"""The fault proxy: a Toxiproxy 2.12-compatible server (``server``, ``api``, ``proxy``,
``link``, ``toxics``), the facade the chaos engine drives (``facade``) and how to start
a server, ours or the real one (``launch``)."""
from chaos.proxy.facade import FaultProxy
from chaos.proxy.launch import external_url, server_command

__all__ = ["FaultProxy", "external_url", "server_command"]
