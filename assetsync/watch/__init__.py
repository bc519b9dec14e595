"""Watch stage: filesystem events, debounce, the watch loop and its polling fallback."""
