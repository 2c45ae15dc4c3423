"""Simulated neurons and the closed loop over HTTP with them, and the demo.

``SimulatedNeuron.calibrated("onet.conv3.9")`` is a spiking unit of the shipped face CNN, calibrated on random images
as the demo's; ``run_closed_loop(client, session_id, manifest, neuron, generations=15, progress=True)`` evolves a
session with it over HTTP, as a rig would.
"""

from evostim.clients.simulation.insilico import GenerationResult, run_closed_loop
from evostim.clients.simulation.neurons import SimulatedNeuron

__all__ = ["GenerationResult", "SimulatedNeuron", "run_closed_loop"]
