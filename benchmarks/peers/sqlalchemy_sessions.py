"""The common FastAPI + SQLAlchemy sessions listing: one query for the page, then per session a count
and the last message for its preview (the N+1 pattern an ORM relationship invites).

SQLite in memory; every SQL statement sent is counted with SQLAlchemy's `before_cursor_execute` event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from mangum import Mangum
from pydantic import BaseModel
from sqlalchemy import ForeignKey, String, Text, create_engine, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
SessionLocal = sessionmaker(bind=engine)
statements: list[str] = []


@event.listens_for(engine, "before_cursor_execute")
def _count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    statements.append(statement)


class Base(DeclarativeBase):
    pass


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    updated_at: Mapped[datetime] = mapped_column(index=True)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()


class SessionSummary(BaseModel):
    session_id: str
    title: str
    status: str
    updated_at: datetime
    message_count: int
    last_message_preview: str | None


class SessionPage(BaseModel):
    sessions: list[SessionSummary]
    total: int


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


app = FastAPI()


@app.get("/api/v1/sessions", response_model=SessionPage)
def list_sessions(
    request: Request, db: Annotated[Session, Depends(get_db)], limit: Annotated[int, Query(ge=1, le=100)] = 50
):
    owner = request.scope["aws.event"]["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    rows = db.scalars(
        select(ChatSession).where(ChatSession.owner == owner).order_by(ChatSession.updated_at.desc()).limit(limit)
    ).all()
    sessions = []
    for row in rows:
        count = db.scalar(select(func.count()).select_from(Message).where(Message.session_id == row.id))
        last = db.scalars(
            select(Message).where(Message.session_id == row.id).order_by(Message.created_at.desc()).limit(1)
        ).first()
        sessions.append(
            SessionSummary(
                session_id=row.id,
                title=row.title,
                status=row.status,
                updated_at=row.updated_at,
                message_count=count or 0,
                last_message_preview=last.content[:100] if last else None,
            )
        )
    total = db.scalar(select(func.count()).select_from(ChatSession).where(ChatSession.owner == owner))
    return SessionPage(sessions=sessions, total=total or 0)


lambda_handler = Mangum(app, lifespan="off")


def seed(owner: str, sessions: int, messages_each: int) -> None:
    Base.metadata.create_all(engine)
    now = datetime.now(UTC)
    with SessionLocal() as db:
        for s in range(sessions):
            session_id = f"session_{s:016x}"
            db.add(ChatSession(id=session_id, owner=owner, title=f"Chat {s}", updated_at=now))
            for m in range(messages_each):
                db.add(Message(session_id=session_id, role="user", content=f"message {m}", created_at=now))
        db.commit()
