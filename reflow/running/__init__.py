"""Running layer: store, dispatcher, worker, executors, config, commands. All I/O lives here."""
