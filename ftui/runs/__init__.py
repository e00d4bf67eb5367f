"""The run pipeline: a run directory as the contract (rundir), the queue (jobs), the detached
supervisor (runner), the trainer subprocess (train), and what keeps them safe (run_inputs,
device_lease, housekeeping)."""
