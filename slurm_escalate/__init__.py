"""slurm-escalate: submit Slurm job arrays and move failed tasks up a resource ladder."""

__version__ = "0.1.0"
