"""watcher: alerts on competitor activity in the TrendTrack TikTok library."""

__version__ = "0.1.0"
