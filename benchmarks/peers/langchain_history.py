"""LangChain's `DynamoDBChatMessageHistory` (langchain-community), on a table of the shape it expects.

Its documented table: hash key `SessionId` (string), the whole conversation in one item's `History` list.
Every `add_messages` reads that item and writes it back whole.
"""

from __future__ import annotations

import warnings
from typing import Any

TABLE = "SessionTable"  # the name its docs use


def create_table(dynamodb_client: Any) -> None:
    dynamodb_client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "SessionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def history(session_id: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community announces its sunset on import
        from langchain_community.chat_message_histories import DynamoDBChatMessageHistory

    return DynamoDBChatMessageHistory(table_name=TABLE, session_id=session_id)


def append(chat: Any, role: str, content: str) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    chat.add_message(HumanMessage(content=content) if role == "user" else AIMessage(content=content))


def seed(count: int, content: str) -> list[dict[str, Any]]:
    """The `History` list that `count` appends of `content` leave behind (alternating user and AI)."""
    from langchain_core.messages import AIMessage, HumanMessage, messages_to_dict

    return messages_to_dict(
        [HumanMessage(content=content) if n % 2 == 0 else AIMessage(content=content) for n in range(count)]
    )
