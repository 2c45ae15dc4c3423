"""What a lab publishes about an evolution: curves, best images, trajectory PCA, the HTML report."""
