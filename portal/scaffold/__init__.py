"""Create a service from a template: the template registry, the Copier form, Flux wiring."""
