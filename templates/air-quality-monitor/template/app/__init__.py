"""Air-quality monitor: Open-Meteo data against the WHO guideline, anomalies and forecasts."""
