"""Runs nobody starts by hand: timers, source commits and base-image updates.

Pure decisions, small I/O around them:

    schedule.py   timers: which occurrence is due now, the next one (cron via croniter, UTC)
    commit.py     commit polls: when the next poll is (jittered), which branch a revision watches
    hooks.py      push webhooks of GitHub, GitLab, Gitea/Forgejo: verify the signature, read the push
    images.py     base images: the guards, the digests seen, the event-bus subscriber of pushes
    causes.py     a cause → the BuildRun it starts: a name derived from the cause, and the record
    metrics.py    what triggers did, by trigger type
    service.py    the I/O: ticks per task (timers, polls), the webhook endpoint, status and Events

Exactly once per cause, across restarts: a run's name is derived from its cause (the timer and the
scheduled minute; the commit SHA; the base's new digest), so a second create of it, after a crash between creating the run
and recording the cause in the task's status, is refused by the API server (409) and adds nothing.
"""
