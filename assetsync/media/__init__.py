"""Media stage: images, audio, channel variants and rules, the transform cache and its pool."""
