"""FastAPI's own webhooks example (https://fastapi.tiangolo.com/advanced/openapi-webhooks/),
unchanged. `python app.py` prints the OpenAPI document FastAPI generates for it."""

import json
from datetime import datetime

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Subscription(BaseModel):
    username: str
    monthly_fee: float
    start_date: datetime


@app.webhooks.post("new-subscription")
def new_subscription(body: Subscription):
    """
    When a new user subscribes to your service we'll send you a POST request with this
    data to the URL that you register for the event `new-subscription` in the dashboard.
    """


@app.get("/users/")
def read_users():
    return ["Rick", "Morty"]


if __name__ == "__main__":
    print(json.dumps(app.openapi(), indent=2))
