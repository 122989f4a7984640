"""Load generators: CPU (`cpu`, held inside a band of total utilisation) and HTTP. Stdlib and psutil only."""
