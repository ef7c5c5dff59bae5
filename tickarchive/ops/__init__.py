"""Applications that span packages: the demo, the recovery drill, the lifecycle jobs
(warm retention, restore), the data-quality report (docs/architecture.md)."""
