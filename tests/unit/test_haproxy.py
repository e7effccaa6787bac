"""Reading HAProxy's stats CSV (``strongroom.haproxy.server_states``)."""

from strongroom import haproxy

STATS_CSV = """\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,
strongroom,FRONTEND,,,0,1,2000,3,0,0,0,0,0,,,,,OPEN,,
strongroom_write,node1,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP,1,
strongroom_write,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,
strongroom_write,BACKEND,0,0,0,1,200,2,0,0,0,0,,0,0,0,0,UP,1,
strongroom_read,node1,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP,1,
strongroom_read,node2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1,
strongroom_read,BACKEND,0,0,0,1,200,2,0,0,0,0,,0,0,0,0,UP,1,

"""


def test_server_states_maps_backend_and_server_to_status_without_frontends():
    states = haproxy.server_states(STATS_CSV)
    assert states[("strongroom_write", "node1")] == "UP"
    assert states[("strongroom_write", "node2")] == "DOWN"
    assert states[("strongroom_read", "BACKEND")] == "UP"
    assert not [key for key in states if key[1] == "FRONTEND"]


def test_servers_up_counts_servers_going_down_but_not_the_backend_line():
    states = haproxy.server_states(STATS_CSV)
    assert haproxy.servers_up(states, "strongroom_write") == {"node1"}
    assert haproxy.servers_up(states, "strongroom_read") == {"node1", "node2"}
    assert haproxy.servers_up(states, "nowhere") == set()
