"""Image tools over the captured and imported images: editing recipes, style effects, background removal, object
labels and import from web pages. Each tool is a pure function of images (no database); the results are stored as
*versions* of their source image by :mod:`utils.versions`."""
