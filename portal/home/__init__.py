"""The home page: a signed-in person's services, changes, reviews, alerts and recent merges."""
