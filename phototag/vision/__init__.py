"""Models and everything that needs torch. Nothing here touches SQLite."""
