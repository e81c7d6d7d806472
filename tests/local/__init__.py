"""Local-cluster tests: real ZooKeeper and node daemon processes on loopback."""
