"""What the tests and the benchmarks both build and run: the shared data's location, classroom videos
made from the shared photos, a course-sized classroom workload, and `iraas up` started in the
background. Neither shipped (not in the package) nor a test package (bench imports it too)."""
