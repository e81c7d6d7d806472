"""The PVC command-line client (``pvc``): a cliff application over the REST API.

See docs/cli.md. Modules: :mod:`pvc_cli.app` (the application),
:mod:`pvc_cli.connections` (named connections), :mod:`pvc_cli.client` (HTTP),
:mod:`pvc_cli.output` (cliff columns), :mod:`pvc_cli.progress` (``--wait``) and
:mod:`pvc_cli.commands` (one class per command).
"""
