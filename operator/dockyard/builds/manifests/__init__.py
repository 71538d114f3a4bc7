"""Pure builders of a run's children (the Kaniko Job and its credentials Secret); golden-tested."""
