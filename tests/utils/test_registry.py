import pytest

from d2a.utils.registry import Registry


def test_register_get_and_list():
    reg = Registry('widget', key=lambda obj: obj.name)

    @reg.register()
    class Knob:
        name = 'knob'

    @reg.register('lever')
    def make_lever():
        return 'lever'

    assert reg.get('knob') is Knob and reg.get('lever') is make_lever
    assert reg.names() == ['knob', 'lever'] and list(reg) == ['knob', 'lever']
    assert 'knob' in reg and 'dial' not in reg and len(reg) == 2
    with pytest.raises(ValueError, match=r"unknown widget 'dial' \(known: knob, lever\)"):
        reg.get('dial')
    with pytest.raises(ValueError, match="^'kind': unknown widget 'dial'"):
        reg.get('dial', "'kind'")
    with pytest.raises(ValueError, match='needs a name'):
        Registry('thing').register()(object())


def test_populate_runs_once_on_first_lookup():
    calls = []
    reg = Registry('plugin', populate=lambda: calls.append(1) or reg.add('late', 3))
    assert calls == []
    assert reg.get('late') == 3 and reg.names() == ['late']
    with pytest.raises(ValueError, match='known: late'):
        reg.get('other')
    assert calls == [1]
