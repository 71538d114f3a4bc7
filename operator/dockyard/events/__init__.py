"""Registry notifications, in once, out to every subscriber.

    registry ──POST envelope──▶ intake (token check, envelope.py) ──▶ Subscriber.accept, for each
                                                                      (webhooks now; builds,
                                                                      replication, housekeeping)

The intake answers 2xx only after every subscriber has durably accepted its share of the envelope;
otherwise 503 and distribution posts the envelope again, so subscribers de-duplicate by event id.
"""
