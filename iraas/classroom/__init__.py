"""The classroom face pipeline: first frame, detection, descriptors, gallery, the CSV.

Nothing here is imported by ``iraas`` itself: numpy, OpenCV and dlib load only when a face
module is used (the ``faces`` extra), so the web tier stays light.
"""
