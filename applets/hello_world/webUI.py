"""The web UI of hello_world: the reference chapter's MyResource, as written there."""

from hanji.core import applet
from hanji.core.utils import TwAppletResource


class MyResource(TwAppletResource):
    ## This might be important to define this resource as leaf
    ## if the url path contains the "/" character after "/res/<applet_id>/":
    isLeaf = True
    path = "path_to_my_resource"

    def render_POST(self, request):
        ## If it is not too long, you can get the POST data with:
        body = request.content.read()
        ## Check if the request header contain something with:
        if request.args['is_good'][0] == "yes":
            return "All right"
        else:
            request.setResponseCode(500)
            return "I'm sorry Dave, I'm afraid i can't do that"


class WebUI(applet.WebUI):
    twisted_dynamic_resources = [MyResource]


web = WebUI()
