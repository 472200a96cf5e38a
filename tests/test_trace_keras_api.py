"""kclf.trace.keras_api: the one module of private Keras names, and the keras versions the
trace accepts."""


def test_version_parsing_of_the_keras_check():
    from kclf.trace.keras_api import MIN_KERAS, _version

    assert _version("3.15.1") > _version("3.10.0") >= _version("3.4.0")
    assert _version("3.10.0rc1") == (3, 10, 0) and _version("3.3.3") < MIN_KERAS <= _version("3.15.1")
