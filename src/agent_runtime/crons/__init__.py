"""Crons: schedules (`schedule`), what a cron request becomes (`define`), one fire (`fire`) and
the scheduler that fires each due cron once across processes (`scheduler`)."""

from agent_runtime.crons.scheduler import CronScheduler

__all__ = ["CronScheduler"]
