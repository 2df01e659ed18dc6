"""Internal developer portal for an AI-native Kubernetes platform."""

__version__ = "0.1.0"
