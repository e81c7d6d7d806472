"""Local-cluster tooling: private ZooKeeper servers today, the cluster launcher next."""
