"""The PVC command-line client (pvc): a cliff application. Built by the CLI issue."""
