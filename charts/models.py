"""Chart sources and the Chart Store."""
