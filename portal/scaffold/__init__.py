"""Create a service from a template: registry, form from Copier's questions, Flux wiring."""
