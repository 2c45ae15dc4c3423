"""The rig side: a file bridge for rigs that cannot speak HTTP, and the MATLAB/Octave client."""
