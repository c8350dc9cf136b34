"""Locust user classes for every nineslab service; each module is one service."""
