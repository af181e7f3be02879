"""Background work on RQ: ``queues`` owns the setup; job modules hold only job functions."""
