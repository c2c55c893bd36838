"""Control of the capture engine: one process drives the camera (the engine lease), the HTTP API's commands reach
it through a queue in the station database (:mod:`utils.control.queue`, :mod:`utils.control.loop`)."""
