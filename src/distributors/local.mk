# src/distributors: jobmon-distributor and its plugins
