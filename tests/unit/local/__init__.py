"""Unit tests of the local-cluster launcher (pvc_local): nothing running but child processes."""
