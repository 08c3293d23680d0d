"""What an operator watches: JSON logs, Prometheus metrics, run-transition events.

Nothing here changes what Conveyor does; it reports it. See docs/operations.md.
"""
