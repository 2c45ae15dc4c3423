"""Sessions: the service that orchestrates a generation, its typed configuration, scoring, the optimizer stepper."""
